"""The command line: parses arguments, calls the library, renders results. No logic of its own."""
