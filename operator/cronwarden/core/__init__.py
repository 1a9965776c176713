"""Pure decisions: schedules, runs, detection, conditions, status and the desired
CronJob. Nothing here talks to the API server, imports kopf, kubernetes or
prometheus_client, or reads the clock: `now` is always a parameter."""
