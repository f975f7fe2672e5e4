"""Process wiring: settings, the worker, the codec server, telemetry and logging."""
