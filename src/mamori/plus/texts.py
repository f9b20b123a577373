"""What each test case checks and what to do when it fails, in the user's language."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

PURPOSE = {
    "TC1": _(
        "The assessor scans the declared public IP addresses from the internet. It fails on any "
        "finding with CVSS 7.0 or more, or a service that exposes data without authentication."
    ),
    "TC2": _(
        "Each sampled device is checked with its own credentials (here: the agent's evidence). "
        "It fails when a fix rated high or critical (or CVSS 7.0 or more, or unrated) was "
        "released more than the catalogue's patch days ago and is not installed, or when the "
        "operating system or other software is no longer supported. Checks UPD-02, UPD-03, "
        "UPD-04 and UPD-05."
    ),
    "TC3": _(
        "Each sampled device has working malware protection: up-to-date anti-malware with "
        "on-access scanning, application allow-listing, or a known EDR agent. Check MAL-01."
    ),
    "TC4": _(
        "Test emails with a link, a benign attachment and an EICAR-type file are sent to the "
        "sampled users; the dangerous content must be blocked or not run."
    ),
    "TC5": _(
        "From the sampled devices' browsers, test files are downloaded from test sites; "
        "malicious downloads must be blocked or not run."
    ),
    "TC6": _(
        "Every cloud service in scope asks its users and administrators for a second factor "
        "wherever the service offers it."
    ),
    "TC7": _(
        "Users do not work day to day as administrators: no second account with root's powers "
        "(UAC-01), no root login over SSH with a password (UAC-02), no sudo rule that grants "
        "every command without a password (UAC-07). The assessor confirms with the users who "
        "holds administrative rights."
    ),
}

REMEDY = {
    "TC1": _(
        "Patch or close the services the scan found, put authentication in front of any that "
        "expose data, then ask for a rescan."
    ),
    "TC2": _(
        "Install the missing updates on every device of the same kind (not only the sampled "
        "ones), replace unsupported software, and let the agents report again."
    ),
    "TC3": _(
        "Install or repair the malware protection on every device, keep its signatures "
        "updated and turn on on-access scanning, then let the agents report again."
    ),
    "TC4": _(
        "Configure the mail filter and the devices to block or quarantine dangerous "
        "attachments and links, and keep users from running them."
    ),
    "TC5": _(
        "Configure web filtering, the browsers and the malware protection so that malicious "
        "downloads are blocked or cannot run."
    ),
    "TC6": _(
        "Turn on multi-factor authentication for every user and administrator of each cloud "
        "service that offers it."
    ),
    "TC7": _(
        "Give administrators separate accounts used only for administration, remove extra "
        "UID 0 accounts and password-less sudo for all commands, and disable root's SSH "
        "password login."
    ),
}
