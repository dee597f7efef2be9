"""Docker and Redis task tests, on a real Docker daemon and real redis-server processes."""
