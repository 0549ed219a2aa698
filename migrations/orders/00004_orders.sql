-- The orders service owns the product catalogue (the prices it charges) and
-- the orders. An order is rejected straight away when it names an unknown
-- product, else it is placed and waits for its payment, then is settled:
-- confirmed or rejected.

-- +goose Up
CREATE TABLE products (
    sku         text        PRIMARY KEY CHECK (sku ~ '^[A-Z0-9-]{3,32}$'),
    name        text        NOT NULL CHECK (name <> ''),
    price_minor bigint      NOT NULL CHECK (price_minor > 0),
    currency    char(3)     NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    id               uuid        PRIMARY KEY,
    customer_id      text        NOT NULL,
    address          text        NOT NULL,
    status           text        NOT NULL CHECK (status IN ('placed', 'confirmed', 'rejected')),
    total_minor      bigint      NOT NULL CHECK (total_minor >= 0),
    currency         char(3)     NOT NULL,
    payment_id       uuid,
    rejection_reason text,
    requested_at     timestamptz NOT NULL,
    placed_at        timestamptz,             -- null when rejected before placement
    settled_at       timestamptz,             -- set on confirmation or rejection
    CHECK ((status = 'placed') = (settled_at IS NULL)),
    CHECK ((status = 'rejected') = (rejection_reason IS NOT NULL))
);

CREATE TABLE order_lines (
    order_id         uuid     NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_no          smallint NOT NULL CHECK (line_no > 0),
    sku              text     NOT NULL,
    name             text     NOT NULL,
    quantity         integer  NOT NULL CHECK (quantity > 0),
    unit_price_minor bigint   NOT NULL CHECK (unit_price_minor >= 0),
    PRIMARY KEY (order_id, line_no)
);

GRANT SELECT, UPDATE ON products TO alpes_orders;
GRANT SELECT, INSERT, UPDATE ON orders TO alpes_orders;
GRANT SELECT, INSERT ON order_lines TO alpes_orders;

-- +goose Down
DROP TABLE order_lines;
DROP TABLE orders;
DROP TABLE products;
