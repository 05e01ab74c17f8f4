"""The standard stack's floor (bench/cold_import.py): the smallest function built the way every
Abacus HTTP function is, with nothing of Abacus in it. Powertools' Logger and its API Gateway
resolver validating a pydantic body (enable_validation), one PynamoDB model, one route. Its cold
import above the baseline is what the project's fixed dependencies cost before a line of Abacus."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel
from pynamodb.attributes import UnicodeAttribute
from pynamodb.models import Model

logger = Logger()


class Item(Model):
    class Meta:
        table_name = "floor"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)


class Body(BaseModel):
    token: str
    distinct_id: str


router = APIGatewayHttpRouter()


@router.post("/flags")
def flags(body: Body) -> dict[str, str]:
    return {"distinct_id": body.distinct_id}


app = APIGatewayHttpResolver(enable_validation=True)
app.include_router(router)


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
