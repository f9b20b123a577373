from django.urls import path

from mamori.assessments import views, views_appeals

app_name = "assessments"

urlpatterns = [
    path("assessments/", views.assessment_list, name="list"),
    path("assessments/new/", views.start, name="start"),
    path("assessments/<int:pk>/", views.detail, name="detail"),
    path("assessments/<int:pk>/sections/<str:code>/", views.section, name="section"),
    path("assessments/<int:pk>/answers/<str:qid>/", views.answer, name="answer"),
    path("assessments/<int:pk>/evidence/", views.evidence, name="evidence"),
    path(
        "assessments/<int:pk>/evidence/<int:attachment_id>/",
        views.download_evidence,
        name="download_evidence",
    ),
    path(
        "assessments/<int:pk>/evidence/<int:attachment_id>/delete/",
        views.delete_evidence,
        name="delete_evidence",
    ),
    path("assessments/<int:pk>/precheck/", views.precheck, name="precheck"),
    path("assessments/<int:pk>/declaration/", views.declaration, name="declaration"),
    path("assessments/<int:pk>/submit/", views.submit, name="submit"),
    path("assessments/<int:pk>/respond/", views.respond, name="respond"),
    path("assessments/<int:pk>/resubmit/", views.resubmit, name="resubmit"),
    path("assessments/<int:pk>/advice/<int:round_>/", views.advice, name="advice"),
    path("assessments/<int:pk>/advice/<int:round_>/pdf/", views.advice_pdf, name="advice_pdf"),
    path("assessments/<int:pk>/appeal/", views_appeals.appeal, name="appeal"),
    path("assessments/<int:pk>/appeal/decide/", views_appeals.decide, name="appeal_decide"),
    path("review/", views.queue, name="queue"),
    path("review/assignment/", views.assignment_rules, name="assignment"),
    path("assessments/<int:pk>/review/", views.review, name="review"),
    path("assessments/<int:pk>/review/take/", views.take, name="take"),
    path(
        "assessments/<int:pk>/review/mark-remaining/",
        views.mark_remaining,
        name="mark_remaining",
    ),
    path("assessments/<int:pk>/review/start/", views.start_review, name="start_review"),
    path("assessments/<int:pk>/review/clarify/", views.clarify, name="clarify"),
    path("assessments/<int:pk>/review/decide/", views.decide, name="decide"),
    path("assessments/<int:pk>/review/<str:qid>/", views.mark, name="mark"),
]
