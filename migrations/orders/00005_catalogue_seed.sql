-- The shop's starting catalogue: mountain gear, prices in euro cents.

-- +goose Up
INSERT INTO products (sku, name, price_minor, currency) VALUES
    ('AXE-ICE-50',    'Ice axe, 50 cm',                 8990, 'EUR'),
    ('CRAMPON-12P',   'Crampons, 12 points',           14900, 'EUR'),
    ('HELMET-MTN',    'Mountaineering helmet',          6990, 'EUR'),
    ('HARNESS-ALP',   'Alpine harness',                 5490, 'EUR'),
    ('ROPE-DRY-60',   'Dry rope, 9.2 mm x 60 m',       18900, 'EUR'),
    ('CARABINER-HMS', 'HMS locking carabiner',          1290, 'EUR'),
    ('BOOT-GTX-42',   'Mountain boots, size 42',       27900, 'EUR'),
    ('JACKET-HS',     'Hardshell jacket',              32900, 'EUR'),
    ('GLOVES-WARM',   'Insulated gloves',               4590, 'EUR'),
    ('HEADLAMP-400',  'Headlamp, 400 lumen',            3990, 'EUR'),
    ('PACK-45L',      'Alpine backpack, 45 l',         14990, 'EUR'),
    ('BIVY-SACK',     'Emergency bivy sack',            2490, 'EUR'),
    ('BEACON-AVL',    'Avalanche transceiver',         29900, 'EUR'),
    ('PROBE-240',     'Avalanche probe, 240 cm',        5990, 'EUR'),
    ('SHOVEL-ALU',    'Aluminium snow shovel',          4490, 'EUR'),
    ('THERMOS-750',   'Insulated bottle, 750 ml',       2990, 'EUR');

-- +goose Down
DELETE FROM products WHERE sku IN (
    'AXE-ICE-50', 'CRAMPON-12P', 'HELMET-MTN', 'HARNESS-ALP', 'ROPE-DRY-60', 'CARABINER-HMS',
    'BOOT-GTX-42', 'JACKET-HS', 'GLOVES-WARM', 'HEADLAMP-400', 'PACK-45L', 'BIVY-SACK',
    'BEACON-AVL', 'PROBE-240', 'SHOVEL-ALU', 'THERMOS-750');
