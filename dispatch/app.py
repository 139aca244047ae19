"""The application factory: routers, error shape, body limit, runtime on app.state."""

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from channels import errors, public_pages, receipts, webform
from channels.partners import forwards
from channels.proxies import TrustedProxies
from channels.public_pages import STATIC_DIR as PUBLIC_STATIC_DIR
from channels.public_pages import STATIC_PATH as PUBLIC_STATIC_PATH
from channels.sms import webhook as sms_webhook
from channels.twilio import fallback as twilio_fallback
from channels.voice import webhook as voice_webhook
from db import crypto
from db.settings import Settings
from dispatch import openapi
from dispatch.cases import api as cases_api
from dispatch.cases import corrections_api, workflow_api
from dispatch.casework import api as casework_api
from dispatch.children import api as children_api
from dispatch.console import api_docs
from dispatch.console import routes as console
from dispatch.headers import SecurityHeaders
from dispatch.limits import BodyLimit
from dispatch.ops import health, metrics, status_api
from dispatch.partners import api as partners_api
from dispatch.referrals import api as referrals_api
from dispatch.retention import holds as retention_holds
from dispatch.runtime import make_runtime
from dispatch.staff import auth, totp
from dispatch.supervision import api as supervision_api
from dispatch.tasks import api as tasks_api
from dispatch.telephony import blocks_api, callbacks_api, calls_api, sms_api
from dispatch.triage import api as triage_api
from workflows.triage import warm as warm_triage


def create_app(
    settings: Settings | None = None,
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
) -> FastAPI:
    settings = settings or Settings()  # read now: `hotline up` sets the URLs just before
    crypto.configure(settings)
    crypto.ring()  # the data key is read (or generated) now, not by the first report
    totp.required_roles(settings)  # a typo in HOTLINE_TOTP_REQUIRED_ROLES stops the start
    database_url = database_url or settings.database_url
    redis_url = redis_url or settings.redis_url
    if not database_url or not redis_url:
        raise RuntimeError("create_app needs DATABASE_URL and REDIS_URL (hotline up sets them)")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.runtime = make_runtime(settings, database_url, redis_url)
        # The triage engine (jieba, the lexicon, the model: ~1 s) loads now, not on the
        # first report, which would wait for it.
        await asyncio.to_thread(warm_triage)
        # Everything loaded so far lives as long as the process: keep it out of the cyclic
        # collector's way, whose full passes otherwise show up as latency spikes.
        gc.freeze()
        try:
            yield
        finally:
            await app.state.runtime.close()

    app = FastAPI(
        title="未保热线 API",
        version="0.1.0",
        description="未成年人救助保护热线：受理、评估、转介与跟踪。",
        lifespan=lifespan,
        # The schema stays public (the contract); the interactive docs are a staff page
        # (dispatch.console.api_docs), ReDoc is not offered (it needs a CDN).
        docs_url=None,
        redoc_url=None,
    )
    errors.install(app)
    openapi.install(app)
    for router in (
        health.router,
        metrics.router,
        public_pages.router,
        auth.router,
        webform.router,
        receipts.router,
        cases_api.router,
        corrections_api.router,
        retention_holds.router,
        children_api.router,
        triage_api.router,
        workflow_api.router,
        referrals_api.router,
        status_api.router,
        twilio_fallback.router,  # before the voice router's own paths
        sms_webhook.router,
        voice_webhook.router,
        sms_api.router,
        calls_api.router,
        callbacks_api.router,
        blocks_api.router,
        partners_api.router,  # before forwards: /forwards/stats is not a source
        forwards.router,
        tasks_api.router,
        casework_api.router,
        supervision_api.router,
        console.router,
    ):
        app.include_router(router)
    app.mount(console.STATIC_PATH, StaticFiles(directory=console.STATIC_DIR), name="console-static")
    app.mount(PUBLIC_STATIC_PATH, StaticFiles(directory=PUBLIC_STATIC_DIR), name="public-static")
    app.mount(api_docs.SWAGGER_PATH, StaticFiles(directory=api_docs.SWAGGER_DIR), name="swagger-ui")
    app.add_middleware(BodyLimit, max_bytes=settings.hotline_max_body_bytes)
    # Outermost: the request id covers every log line, the timing every answer.
    app.add_middleware(metrics.Observe, timed=bool(settings.hotline_metrics_token))
    # Every answer, errors and 413s included; inside TrustedProxies, which settles the scheme.
    app.add_middleware(SecurityHeaders)
    # Before anything reads the client's address: the real one behind trusted proxies.
    app.add_middleware(TrustedProxies, trusted=settings.hotline_trusted_proxies)
    return app
