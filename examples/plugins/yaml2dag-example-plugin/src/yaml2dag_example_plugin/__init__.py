"""An example yaml2dag task-type plugin (see docs/plugins.md)."""
