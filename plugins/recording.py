"""Built-in plugin: arrives with its issue."""
