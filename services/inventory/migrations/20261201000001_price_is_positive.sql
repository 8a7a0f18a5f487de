-- Prices are greater than zero (`inputs::Price`): payments authorizes only positive amounts, so a
-- free product could be listed but never bought. A product stored with a zero price before this
-- rule is taken off sale and given the smallest price, so the constraint holds for every row;
-- an administrator sets its real price (UpsertProduct) to sell it again.
UPDATE products SET price_minor = 1, active = false WHERE price_minor <= 0;
ALTER TABLE products
    DROP CONSTRAINT products_price_minor_check,
    ADD CONSTRAINT products_price_minor_check CHECK (price_minor > 0);
