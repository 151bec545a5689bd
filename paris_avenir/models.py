"""Every table of the product, registered on one metadata for Alembic and the tests:
importing a domain's models module declares its tables on `Base`."""

from paris_avenir.aid_requests import models as aid_requests_models
from paris_avenir.appointments import models as appointments_models
from paris_avenir.audit import models as audit_models
from paris_avenir.auth import models as auth_models
from paris_avenir.db import Base
from paris_avenir.documents import models as documents_models
from paris_avenir.kit import settings_store
from paris_avenir.messaging import models as messaging_models
from paris_avenir.outreach import models as outreach_models
from paris_avenir.staff import models as staff_models
from paris_avenir.youths import import_models as youth_import_models
from paris_avenir.youths import models as youths_models

# Every module whose classes are tables: imported for what importing does (declaring them).
TABLE_MODULES = (
    aid_requests_models,
    appointments_models,
    audit_models,
    auth_models,
    documents_models,
    settings_store,
    messaging_models,
    outreach_models,
    staff_models,
    youth_import_models,
    youths_models,
)

__all__ = ["TABLE_MODULES", "Base"]
