-- W3C trace context of each event, sent as the CloudEvents distributed-tracing extension
-- (`traceparent`, `tracestate`): the API request's own valid `traceparent`, else a new one.
-- Nullable: events stored before this migration have none and are sent without it.
ALTER TABLE integration_event ADD COLUMN traceparent TEXT;
ALTER TABLE integration_event ADD COLUMN tracestate TEXT;
