-- Erasure of a wallet's integration data (a data-protection request): when it happened to an
-- event. An erased event keeps its ids, type, subject (external keys only), times and schema;
-- its `data` is replaced by the JSON `null`, and the stored requests and responses of its
-- deliveries' attempts are removed (`store::erasure`). NULL: not erased.
ALTER TABLE integration_event ADD COLUMN erased_at BIGINT;
