"""Every URL of the review app. Each view names its roles (:mod:`.access`); tests/web/test_permissions.py
holds a row per name and fails for a new one without its row."""

from django.urls import path

from .views import actions, auth, dashboard, incidents, playback, privacy, static, video

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("login/", auth.login_view, name="login"),
    path("logout/", auth.logout_view, name="logout"),
    path("language/", auth.language, name="set_language"),
    path("static/<path:path>", static.static_file, name="static"),
    path("incidents/", incidents.incident_list_view, name="incident_list"),
    path("incidents/<int:pk>/", incidents.incident_detail, name="incident_detail"),
    path("incidents/<int:pk>/hold/", actions.place_hold, name="incident_hold"),
    path("incidents/<int:pk>/propose-deletion/", actions.propose_deletion, name="incident_propose_deletion"),
    path("incidents/<int:pk>/play/", video.play, name="incident_play"),
    path("incidents/<int:pk>/export/", video.export, name="incident_export"),
    path("playback/<int:access>/", playback.player, name="playback_player"),
    path("playback/<int:access>/timeline.json", playback.timeline, name="playback_timeline"),
    path("playback/<int:access>/pieces/<str:stem>.mp4", playback.piece, name="playback_piece"),
    path("holds/<int:pk>/propose-release/", actions.propose_release, name="hold_propose_release"),
    path("decisions/<int:pk>/approve/", actions.approve, name="decision_approve"),
    path("privacy/accesses/", privacy.accesses, name="privacy_accesses"),
    path("privacy/deletions/", privacy.deletions, name="privacy_deletions"),
    path("privacy/expiring/", privacy.expiring, name="privacy_expiring"),
    path("privacy/subject/", privacy.subject, name="privacy_subject"),
]
