"""mint.http: process-less HTTP/1.1, HTTP/2 and (with the http3 extra) HTTP/3 connections."""

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
