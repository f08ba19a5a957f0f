-- VMT's notifications (seed 000) in PostgreSQL, with the fields of VMT's own Notification
-- documents (notificationType, toUser, fromUser, resourceType, resourceId, isTrashed,
-- createdAt, updatedAt). VMT keeps them in MongoDB; the seed gives their flow, not a SQL
-- schema, so this is the table a VMT on PostgreSQL would have, as docs/store.md maps it.
-- "seq" gives the insertion order that MongoDB's ObjectIds give; "payload" keeps the rest of
-- what the notification carries (requestId, roomName, fromUser's profile, the room).
CREATE TABLE public."notifications" (
  "seq" BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  "_id" TEXT NOT NULL UNIQUE,
  "notificationType" TEXT NOT NULL,
  "toUser" TEXT NOT NULL,
  "fromUser" TEXT,
  "resourceType" TEXT,
  "resourceId" TEXT,
  "payload" JSONB NOT NULL,
  "isTrashed" BOOLEAN NOT NULL DEFAULT false,
  "createdAt" TIMESTAMPTZ NOT NULL,
  "updatedAt" TIMESTAMPTZ NOT NULL
);
CREATE INDEX "notifications_toUser" ON public."notifications" ("toUser", "seq");
