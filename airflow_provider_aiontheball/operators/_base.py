"""What every AI on the Ball operator shares: the connection id and a hook built on first use."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallHook

from airflow_provider_aiontheball.defaults import DEFAULT_CONN_ID

__all__ = ["DEFAULT_CONN_ID", "AIOnTheBallBaseOperator"]


class AIOnTheBallBaseOperator(BaseOperator):
    """Base of the provider's operators: no I/O in the constructor; the hook is built when first used.

    :param aiontheball_conn_id: Airflow connection id. Default ``aiontheball_default``.
    """

    def __init__(self, *, aiontheball_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aiontheball_conn_id = aiontheball_conn_id

    @cached_property
    def hook(self) -> AIOnTheBallHook:
        from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallHook

        return AIOnTheBallHook(self.aiontheball_conn_id)
