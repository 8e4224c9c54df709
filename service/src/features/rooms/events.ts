import type { PubSub } from '../../platform/pubsub.js';

export const roomChannel = (roomId: string) => `parley:room:${roomId}`;

export type RoomEvent =
  | { type: 'member.joined' | 'member.left'; roomId: string; userId: string }
  | { type: 'leaderboard.updated'; roomId: string; period: 'week' | 'month' | 'all-time' }
  | {
      type: 'message.created';
      roomId: string;
      message: {
        id: string;
        roomId: string;
        authorId: string;
        body: string;
        createdAt: string;
        attachmentIds?: string[];
      };
      /** The message's place in its room (no gaps, commit order): live delivery orders by it. */
      seq: number;
    };

/**
 * Announces a change to every API process with a socket in the room. Called only after the change
 * has committed (MySQL, then Redis): a subscriber that reacts must find the state it is told about.
 * `origin` lets a process recognise its own events; `id` lets a client resume without duplicates.
 */
export async function publishRoomEvent(pubsub: PubSub, origin: string, event: RoomEvent): Promise<void> {
  await pubsub.publish(roomChannel(event.roomId), roomEventPayload(origin, event));
}

/** What goes on the channel, for callers that publish in a pipeline of their own. */
export function roomEventPayload(origin: string, event: RoomEvent) {
  return { ...event, origin, at: new Date().toISOString() };
}
