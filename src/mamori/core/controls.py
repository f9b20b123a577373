"""The five technical controls of the scheme: their keys, their order and their names, defined
once. The keys are those of the evaluation JSON, of the catalogue's question areas and of the
verdict columns; the order is the one the scheme lists them in.

Pure logic, no Django imports: the evaluator and its CLI read the names as plain ja/en texts;
pages and model choices read them in the active language through ``mamori.core.choices``.
"""

from __future__ import annotations

FIREWALLS = "firewalls"
SECURE_CONFIGURATION = "secure_configuration"
SECURITY_UPDATE_MANAGEMENT = "security_update_management"
USER_ACCESS_CONTROL = "user_access_control"
MALWARE_PROTECTION = "malware_protection"

FIVE_CONTROLS = (
    FIREWALLS,
    SECURE_CONFIGURATION,
    SECURITY_UPDATE_MANAGEMENT,
    USER_ACCESS_CONTROL,
    MALWARE_PROTECTION,
)

LABELS = {
    FIREWALLS: {"ja": "ファイアウォール", "en": "Firewalls"},
    SECURE_CONFIGURATION: {"ja": "セキュアな構成", "en": "Secure configuration"},
    SECURITY_UPDATE_MANAGEMENT: {
        "ja": "セキュリティアップデート管理",
        "en": "Security update management",
    },
    USER_ACCESS_CONTROL: {"ja": "ユーザーアクセス制御", "en": "User access control"},
    MALWARE_PROTECTION: {"ja": "マルウェア対策", "en": "Malware protection"},
}
