"""Why an embed's data call is refused: a status and a message a host application's
developer can act on (never the data, never the portal's internals)."""


class EmbedRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
