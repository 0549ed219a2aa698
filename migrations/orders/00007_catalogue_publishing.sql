-- What orders needs to publish its catalogue and explain its rejections.
--
-- products.published_updated_at is the updated_at of the product state last
-- appended to the outbox as alpes.catalog.v1.ProductUpdated, NULL when the
-- product was never published. At startup the orders service publishes every
-- product whose published_updated_at differs from its updated_at, and stamps
-- the rows in the same transaction, so each state is published exactly once
-- (services/orders, catalogue.go).
--
-- A trigger keeps updated_at honest: any change of name, price or currency
-- moves it to the changing transaction's clock, so a changed product is
-- published again at the next start whoever changed it.
--
-- orders.rejection_detail is the human-readable half of a rejection
-- (OrderRejected.detail): which SKU is unknown, why a payment was declined.

-- +goose Up
ALTER TABLE products ADD COLUMN published_updated_at timestamptz;

-- +goose StatementBegin
CREATE FUNCTION products_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := greatest(clock_timestamp(), OLD.updated_at + interval '1 microsecond');
    RETURN NEW;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER products_touch_updated_at
    BEFORE UPDATE OF name, price_minor, currency ON products
    FOR EACH ROW
    WHEN ((OLD.name, OLD.price_minor, OLD.currency) IS DISTINCT FROM (NEW.name, NEW.price_minor, NEW.currency))
    EXECUTE FUNCTION products_touch_updated_at();

ALTER TABLE orders ADD COLUMN rejection_detail text;

-- +goose Down
ALTER TABLE orders DROP COLUMN rejection_detail;
DROP TRIGGER products_touch_updated_at ON products;
DROP FUNCTION products_touch_updated_at();
ALTER TABLE products DROP COLUMN published_updated_at;
