"""An event-sourced lead lifecycle engine."""
