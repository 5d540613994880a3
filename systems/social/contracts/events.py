"""social events: what the user and friend services record with their writes (the outbox), and all the
recommendation service's graph is built from. Payloads serialise in camelCase."""

from __future__ import annotations

from datetime import datetime

from junction.events import Event


class UserCreated(Event):
    """A user was created (the reference's USER_CREATED)."""

    event_name = "social.UserCreated"
    user_id: int
    first_name: str
    last_name: str
    created_at: datetime
    last_modified: datetime


class UserUpdated(Event):
    """A user's names changed (USER_UPDATED)."""

    event_name = "social.UserUpdated"
    user_id: int
    first_name: str
    last_name: str
    created_at: datetime
    last_modified: datetime


class FriendAdded(Event):
    """``user_id`` befriended ``friend_id`` (FRIEND_ADDED); the friendship is undirected."""

    event_name = "social.FriendAdded"
    id: int
    user_id: int
    friend_id: int
    created_at: datetime


class FriendRemoved(Event):
    """The friendship of row ``id`` ended (FRIEND_REMOVED)."""

    event_name = "social.FriendRemoved"
    id: int
    user_id: int
    friend_id: int
