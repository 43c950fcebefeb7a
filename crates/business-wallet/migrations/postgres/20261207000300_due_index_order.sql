-- The claim takes due deliveries in the order (due_at, id): equal due times (a resumed
-- channel's deliveries, made due at once) go oldest first. With the index on due_at alone, a
-- claim of 64 had to sort every due row to find them (about a second with a million pending);
-- with id in the index it reads the first 64 in order.
DROP INDEX integration_delivery_due;
CREATE INDEX integration_delivery_due ON integration_delivery (due_at, id) WHERE state = 'PENDING';
