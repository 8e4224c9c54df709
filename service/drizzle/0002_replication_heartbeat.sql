CREATE TABLE `replication_heartbeat` (
	`id` tinyint unsigned NOT NULL,
	`beat_at` datetime(3) NOT NULL,
	CONSTRAINT `replication_heartbeat_id` PRIMARY KEY(`id`)
);
