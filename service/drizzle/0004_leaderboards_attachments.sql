CREATE TABLE `leaderboard_flushes` (
	`batch_id` varchar(64) NOT NULL,
	`created_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	CONSTRAINT `leaderboard_flushes_batch_id` PRIMARY KEY(`batch_id`)
);
--> statement-breakpoint
CREATE TABLE `leaderboard_scores` (
	`room_id` char(36) NOT NULL,
	`period_key` varchar(16) NOT NULL,
	`user_id` char(36) NOT NULL,
	`score` bigint NOT NULL,
	`updated_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	CONSTRAINT `leaderboard_scores_room_id_period_key_user_id_pk` PRIMARY KEY(`room_id`,`period_key`,`user_id`)
);
--> statement-breakpoint
DROP TABLE `points`;--> statement-breakpoint
ALTER TABLE `attachments` MODIFY COLUMN `status` enum('pending','ready','rejected') NOT NULL DEFAULT 'pending';--> statement-breakpoint
ALTER TABLE `attachments` ADD `filename` varchar(255) NOT NULL;--> statement-breakpoint
ALTER TABLE `attachments` ADD `rejected_reason` varchar(255);--> statement-breakpoint
ALTER TABLE `attachments` ADD `completed_at` datetime(3);--> statement-breakpoint
ALTER TABLE `leaderboard_scores` ADD CONSTRAINT `leaderboard_scores_room_id_rooms_id_fk` FOREIGN KEY (`room_id`) REFERENCES `rooms`(`id`) ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE `leaderboard_scores` ADD CONSTRAINT `leaderboard_scores_user_id_users_id_fk` FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX `leaderboard_scores_period_user_idx` ON `leaderboard_scores` (`period_key`,`user_id`);--> statement-breakpoint
CREATE INDEX `attachments_status_created_idx` ON `attachments` (`status`,`created_at`);--> statement-breakpoint
CREATE INDEX `attachments_message_idx` ON `attachments` (`message_id`);--> statement-breakpoint
ALTER TABLE `attachments` DROP COLUMN `verified_at`;