"""Abacus: experiments, assignment, ingestion and results, shared by the three functions.

`abacus.stats` lives in the stats layer; extend_path lets the two source folders form one package
locally, as the two layers do when Lambda unpacks them into /opt/python.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
