"""The CSV functions of 0003 run in the leader of a parallel plan only (PARALLEL RESTRICTED).

exports_csv_float catches an out-of-range number with an EXCEPTION block, which starts a
subtransaction, and PostgreSQL refuses subtransactions during a parallel operation ("cannot
start subtransactions during a parallel operation"). 0003 marked it, and the two functions that
call it, PARALLEL SAFE, which lets the planner evaluate them inside a parallel plan, and it chooses
such plans for the CSV's SELECT once that joins another table (the user agents' dictionary,
audit migration 0015). RESTRICTED keeps them out of the workers, as PostgreSQL's documentation asks of a
function that uses a subtransaction ("Parallel Labeling for Functions and Aggregates"); the rows
may still be read in parallel, and the leader writes each cell.
"""

from django.db import migrations

FUNCTIONS = (
    "exports_csv_float(text)",
    "exports_csv_json(jsonb)",
    "exports_csv_details(jsonb)",
)


def _label(schema_editor, label):
    if schema_editor.connection.vendor == "postgresql":
        for function in FUNCTIONS:
            schema_editor.execute(f"ALTER FUNCTION {function} PARALLEL {label}")


def forward(apps, schema_editor):
    _label(schema_editor, "RESTRICTED")


def backward(apps, schema_editor):
    _label(schema_editor, "SAFE")


class Migration(migrations.Migration):
    dependencies = [("exports", "0003_csv_json_functions")]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
