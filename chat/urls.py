from django.urls import path

from chat import views

app_name = "chat"

urlpatterns = [
    path("", views.room_list, name="rooms"),
    # Any segment reaches the view, so that a bad room name gets a page saying why.
    path("<str:room>/", views.room_detail, name="room"),
    path("<str:room>/invite", views.room_invite, name="invite"),
    path("<str:room>/leave", views.room_leave, name="leave"),
    path("<str:room>/remove", views.room_remove, name="remove"),
    path("<str:room>/rename", views.room_rename, name="rename"),
    path("<str:room>/retention", views.room_retention, name="retention"),
    path("<str:room>/search", views.room_search, name="search"),
    path("<str:room>/at/<int:seq>", views.message_in_context, name="at"),
    path("<str:room>/pictures/<int:upload_id>/<str:name>", views.picture, name="picture"),
]
