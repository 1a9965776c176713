"""The ScheduledTask API: pydantic models, the CRD generated from them, and the
embedded Kubernetes schemas."""
