from .selectors import projects_for_user


def projects(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"user_projects": projects_for_user(user=user)}
