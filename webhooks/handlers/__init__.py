"""One small function per (event, action); `router` routes to all of them."""

from webhooks.handlers import comments, installations, issues, pulls, reviews
from webhooks.routing import Router

router = Router(issues.router, comments.router, reviews.router, pulls.router, installations.router)

__all__ = ["router"]
