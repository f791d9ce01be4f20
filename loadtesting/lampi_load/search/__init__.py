"""The hone-in search: the state machine that picks the next user count, and the sar capture beside it."""
