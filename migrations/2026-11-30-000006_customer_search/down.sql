DROP TRIGGER customers_search ON customers;
DROP FUNCTION c360_customer_search_trigger();
DROP TABLE customer_search;
CREATE INDEX customers_name_trgm ON customers USING gin (name gin_trgm_ops);
CREATE INDEX customers_email_trgm ON customers USING gin (email gin_trgm_ops);
CREATE INDEX customers_phone_digits_trgm ON customers USING gin (phone_digits gin_trgm_ops);
CREATE INDEX customers_name_lower ON customers (lower(name), id);
