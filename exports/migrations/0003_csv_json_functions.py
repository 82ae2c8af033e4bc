"""Functions that let PostgreSQL write an event's details as the Python CSV writer does.

exports/copy.py writes CSV with COPY (SELECT ...) TO STDOUT. Its details cell must be the bytes of
exports.csv's `json.dumps(details, separators=(",", ":"), ensure_ascii=False, sort_keys=True)`
of the value Django reads back from the jsonb column, and jsonb's own text is not that: it puts
a space after every ":" and ",", orders an object's keys by length before bytes, and prints a
number as its exact decimal where Python, which reads any number with a decimal point as a
float, prints that float's shortest repr ("1.50" is 1.5, "1e+16" stays, "0" with a point is
"0.0"). No built-in function compacts or reorders JSON, and an object nests, so the value is
rebuilt here, recursively:

- exports_csv_json(jsonb): objects with their keys in code-point order (the order of the bytes
  of UTF-8, so COLLATE "C"), arrays in order, strings, true, false and null as jsonb prints them
  (its escapes are Python's: \\" \\\\ \\b \\f \\n \\r \\t and \\u00XX, lowercase, for the other
  control characters; nothing else is escaped, as with ensure_ascii=False), integers as their
  digits (Python reads them as int and prints them back unchanged), numbers with a decimal point
  through exports_csv_float.
- exports_csv_details(jsonb): the details cell, as exports.csv writes `details or {}` (what
  Python finds false is "{}"), a negative number neutralised as a formula would be.
- exports_csv_float(text): Python's float repr of a decimal. PostgreSQL's float8 output, with
  extra_float_digits above 0 (set on the function, whatever the session says), is the same
  shortest round-trip digits; it differs in form only: no ".0" on whole numbers and exponent
  notation from 1e15, where Python waits for 1e16. A value beyond a float's range is what
  Python makes of it: Infinity, or a zero keeping its sign.

IMMUTABLE and without access to any table, so executing them needs no privilege beyond PUBLIC's
default. SQLite has no COPY: `make run` keeps the Python writer.
"""

from django.db import migrations

CREATE = r"""
CREATE OR REPLACE FUNCTION exports_csv_float(number text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET extra_float_digits = 1
AS $$
DECLARE
    shown text;
    mantissa text;
    digits text;
    sign text := '';
BEGIN
    BEGIN
        shown := number::float8::text;
    EXCEPTION WHEN numeric_value_out_of_range THEN
        -- Python's float() rounds what is too small to zero and what is too large to infinity.
        IF number ~ '^-?0\.' THEN
            RETURN CASE WHEN left(number, 1) = '-' THEN '-0.0' ELSE '0.0' END;
        END IF;
        RETURN CASE WHEN left(number, 1) = '-' THEN '-Infinity' ELSE 'Infinity' END;
    END;
    IF position('e' IN shown) = 0 THEN
        RETURN CASE WHEN position('.' IN shown) = 0 THEN shown || '.0' ELSE shown END;
    END IF;
    IF split_part(shown, 'e', 2) <> '+15' THEN
        RETURN shown;  -- below 1e-4 or from 1e16, both write an exponent, alike
    END IF;
    -- From 1e15 to 1e16 Python writes all sixteen integer digits and at least one decimal.
    mantissa := split_part(shown, 'e', 1);
    IF left(mantissa, 1) = '-' THEN
        sign := '-';
        mantissa := substr(mantissa, 2);
    END IF;
    digits := replace(mantissa, '.', '');
    IF length(digits) <= 16 THEN
        RETURN sign || rpad(digits, 16, '0') || '.0';
    END IF;
    RETURN sign || left(digits, 16) || '.' || substr(digits, 17);
END
$$;

CREATE OR REPLACE FUNCTION exports_csv_json(value jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
BEGIN
    CASE jsonb_typeof(value)
    WHEN 'object' THEN
        RETURN '{' || coalesce((
            SELECT string_agg(to_jsonb(key)::text || ':' || exports_csv_json(item), ','
                              ORDER BY key COLLATE "C")
            FROM jsonb_each(value) AS pair(key, item)
        ), '') || '}';
    WHEN 'array' THEN
        RETURN '[' || coalesce((
            SELECT string_agg(exports_csv_json(item), ',' ORDER BY position)
            FROM jsonb_array_elements(value) WITH ORDINALITY AS element(item, position)
        ), '') || ']';
    WHEN 'number' THEN
        IF position('.' IN value::text) = 0 THEN
            RETURN value::text;
        END IF;
        RETURN exports_csv_float(value::text);
    ELSE
        RETURN value::text;
    END CASE;
END
$$;

CREATE OR REPLACE FUNCTION exports_csv_details(details jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    -- exports.csv writes `details or {}`: what Python finds false is "{}".
    IF details IS NULL OR details IN ('null', '{}', '[]', '""', 'false', '0') THEN
        RETURN '{}';
    END IF;
    -- A negative number is the one JSON that starts like a formula.
    IF jsonb_typeof(details) = 'number' AND details < '0' THEN
        RETURN '''' || exports_csv_json(details);
    END IF;
    RETURN exports_csv_json(details);
END
$$;
"""

DROP = """
DROP FUNCTION IF EXISTS exports_csv_details(jsonb);
DROP FUNCTION IF EXISTS exports_csv_json(jsonb);
DROP FUNCTION IF EXISTS exports_csv_float(text);
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("exports", "0002_export_claims")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
