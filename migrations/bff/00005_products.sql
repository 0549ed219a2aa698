-- The bff's replica of the product catalogue, which the orders service owns
-- and publishes as alpes.catalog.v1.ProductUpdated events. The bff lists
-- products and checks SKUs from it without calling orders.

-- +goose Up
CREATE TABLE products (
    sku         text        PRIMARY KEY,
    name        text        NOT NULL,
    price_minor bigint      NOT NULL CHECK (price_minor >= 0),
    currency    char(3)     NOT NULL,
    updated_at  timestamptz NOT NULL  -- of the newest applied ProductUpdated: older events are ignored
);

GRANT SELECT, INSERT, UPDATE ON products TO alpes_bff;

-- +goose Down
DROP TABLE products;
