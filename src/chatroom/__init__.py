"""chatroom: a self-hosted real-time chat room (Tornado, Redis, Peewee, click)."""

__version__ = "0.1.0"
