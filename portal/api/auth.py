"""`POST /api/v1/auth/token/`: username and password in, an expiring token out.

Tokens are django-rest-knox tokens: only a digest is stored, each expires
(REST_KNOX["TOKEN_TTL"]), and they are sent as `Authorization: Token <token>`. They are
created, listed and revoked through portal.api.tokens, like the named tokens of /my/tokens/.
Failed attempts count towards the sign-in limit (portal.login_limits): 429 when locked out.
"""

from django.contrib.auth import authenticate
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from knox.settings import knox_settings
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.api.tokens import PASSWORD_TOKEN_NAME, TokenRefused, api_token_create
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
        try:
            record, token = api_token_create(
                user=user, name=PASSWORD_TOKEN_NAME, lifetime=knox_settings.TOKEN_TTL
            )
        except TokenRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_403_FORBIDDEN)
        return Response({"token": token, "expiry": record.token.expiry})


class PortalTokenScheme(KnoxTokenScheme):
    """The OpenAPI security scheme of the portal's token authentication (knox's)."""

    target_class = "portal.api.tokens.TokenAuthentication"
