"""Must FAIL ``mypy --strict``: a misspelt option is a type error where it is written.

Excluded from the project's mypy run; ``tests/test_typing.py`` checks that mypy refuses it
with exactly these errors.
"""

from starlette.applications import Starlette

from restfault.flask import RestFault as FlaskRestFault
from restfault.starlette import RestFault

app = Starlette()
RestFault(app, stlye="bkend")  # error: unexpected keyword argument "stlye"
FlaskRestFault(default_limit="10/minute")  # error: unexpected keyword argument "default_limit"
