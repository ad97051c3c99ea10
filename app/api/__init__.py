"""The host API: JSON over HTTP for the applications that own the coins or the API quota."""
