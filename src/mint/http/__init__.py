"""mint.http: process-less HTTP/1.1 and HTTP/2 connections (Mint.HTTP's part)."""

from mint.http.events import EOF, STREAM, Data, Done, Error, Event, Headers, Pong, Ref, Status
from mint.http.transport import Connection, connect

__all__ = [
    "EOF",
    "STREAM",
    "Connection",
    "Data",
    "Done",
    "Error",
    "Event",
    "Headers",
    "Pong",
    "Ref",
    "Status",
    "connect",
]
