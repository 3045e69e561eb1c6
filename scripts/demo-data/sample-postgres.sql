-- A small shop database: a sequence, an enum, a view, a function, a trigger and some awkward data.
CREATE TYPE order_state AS ENUM ('new', 'paid', 'shipped');

CREATE TABLE customers (
  id serial PRIMARY KEY,
  name text NOT NULL,
  avatar bytea
);

CREATE TABLE orders (
  id bigserial PRIMARY KEY,
  customer_id int NOT NULL REFERENCES customers(id),
  state order_state NOT NULL DEFAULT 'new',
  note text,
  total numeric(12,2) NOT NULL
);

CREATE TABLE "order log" (id serial PRIMARY KEY, entry text);

INSERT INTO customers (name, avatar) VALUES ('Zoë 😀', '\x00ff7f0d0a'), ('O''Brien', NULL);
INSERT INTO orders (customer_id, state, note, total) VALUES
  (1, 'paid', E'line one\nline two; \\connect demo_shop', 12.50),
  (2, 'new', 'DROP DATABASE demo_shop;', 99.99),
  (1, 'shipped', NULL, 0);

CREATE VIEW order_totals AS SELECT customer_id, sum(total) AS total FROM orders GROUP BY customer_id;

CREATE FUNCTION log_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO "order log" (entry) VALUES ('order ' || NEW.id || '; state ' || NEW.state);
  RETURN NEW;
END;
$$;
CREATE TRIGGER orders_log AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION log_order();

SELECT setval('orders_id_seq', 1000);
