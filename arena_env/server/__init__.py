"""The TendedLoop-protocol sandbox server."""
