"""The operator's side effects: the one API client, the watch-fed cache, the
work queue, the controller, the kopf wiring, leader election and metrics."""
