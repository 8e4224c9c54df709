-- Existing messages get their seq in id order, which is as close to their commit order as can be
-- known now; every later message gets it from the room's locked counter (see db/schema.ts).
ALTER TABLE `messages` ADD `seq` bigint unsigned DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `rooms` ADD `message_seq` bigint unsigned DEFAULT 0 NOT NULL;--> statement-breakpoint
UPDATE `messages` AS `m` JOIN (SELECT `id`, ROW_NUMBER() OVER (PARTITION BY `room_id` ORDER BY `id`) AS `n` FROM `messages`) AS `numbered` ON `numbered`.`id` = `m`.`id` SET `m`.`seq` = `numbered`.`n`;--> statement-breakpoint
UPDATE `rooms` AS `r` SET `r`.`message_seq` = (SELECT COUNT(*) FROM `messages` AS `m` WHERE `m`.`room_id` = `r`.`id`);--> statement-breakpoint
ALTER TABLE `messages` ALTER COLUMN `seq` DROP DEFAULT;--> statement-breakpoint
ALTER TABLE `messages` ADD CONSTRAINT `messages_room_seq_unique` UNIQUE(`room_id`,`seq`);
