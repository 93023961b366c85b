"""mint.http: process-less HTTP/1.1 and HTTP/2 connections (Mint.HTTP's part)."""

from mint.http.events import EOF, STREAM, Data, Done, Error, Event, Headers, Pong, Ref, Status

__all__ = ["EOF", "STREAM", "Data", "Done", "Error", "Event", "Headers", "Pong", "Ref", "Status"]
