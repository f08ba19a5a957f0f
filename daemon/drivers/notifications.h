/* The notifications driver (VMT, seed 000): what the HTTP API and the tests need of it. */
#ifndef SIOC_DAEMON_DRIVERS_NOTIFICATIONS_H
#define SIOC_DAEMON_DRIVERS_NOTIFICATIONS_H

#include "channel.h"

/* The event a notification is pushed as, unless the channel's option "event" says otherwise:
 * VMT's SocketProvider listens for it (socket.on('NEW_NOTIFICATION', ({notification, course,
 * room}) => ...)). */
#define NOTIFICATIONS_DEFAULT_EVENT "NEW_NOTIFICATION"

/* Pushes a stored notification ({id, userId, type, payload, read, createdAt}, borrowed) at
 * once to every socket of its user on channel, as notifications_event() shapes it. Does nothing
 * for a channel of another driver, or once the daemon is stopping. */
void notifications_push(channel_t *channel, json_t *notification);

/* A stored notification as clients see it (new reference): its own fields, VMT's names for
 * them (_id, notificationType, toUser, isTrashed: false) and the payload's fields at the top
 * level, as VMT reads notification.resourceType, resourceId and fromUser; payload.room and
 * payload.course stay in payload only. Stored fields win over payload fields. */
json_t *notifications_view(json_t *stored);
/* The pushed event's argument (new reference): {notification: view, room?, course?}, room and
 * course taken from the payload, where VMT's SocketProvider looks for them. */
json_t *notifications_event(json_t *stored);

#endif
