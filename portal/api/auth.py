"""`POST /api/v1/auth/token/`: username and password in, an expiring token out.

Tokens are django-rest-knox tokens: only a digest is stored, each expires
(REST_KNOX["TOKEN_TTL"]), and they are sent as `Authorization: Token <token>`.
Failed attempts count towards the sign-in limit (portal.login_limits): 429 when locked out.
"""

from django.contrib.auth import authenticate
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from knox.models import AuthToken
from knox.settings import knox_settings
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.login_limits import lockout_response, request_locked_out


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=256, trim_whitespace=False, write_only=True)


class TokenObtainView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes: list = []

    @extend_schema(
        request=TokenRequestSerializer,
        responses={
            200: inline_serializer(
                "TokenResponse",
                {"token": serializers.CharField(), "expiry": serializers.DateTimeField()},
            ),
            429: OpenApiResponse(
                description="Too many failed attempts for this username from this address; "
                "the Retry-After header says when to try again."
            ),
        },
        auth=[],
    )
    def post(self, request):
        serializer = TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(
            request,
            username=serializer.validated_data["username"],
            password=serializer.validated_data["password"],
        )
        if user is None and request_locked_out(request):
            return lockout_response(request._request)
        if user is None or not user.is_active:
            return Response(
                {"detail": "Unable to sign in with the username and password given."},
                status=status.HTTP_400_BAD_REQUEST,
            )
        limit = knox_settings.TOKEN_LIMIT_PER_USER
        if limit is not None:
            tokens = AuthToken.objects.filter(user=user)
            tokens.filter(expiry__lt=timezone.now()).delete()
            if tokens.count() >= limit:
                return Response(
                    {
                        "detail": f"You already hold {limit} valid tokens, the most allowed. "
                        "Wait for one to expire, or ask an admin to remove old ones."
                    },
                    status=status.HTTP_403_FORBIDDEN,
                )
        instance, token = AuthToken.objects.create(user)
        return Response({"token": token, "expiry": instance.expiry})
