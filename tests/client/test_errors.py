"""The client's literal error table agrees with the server's exception classes (the client cannot import
them: it is installed without the server)."""

from __future__ import annotations

from saliency_client.errors import STATUS_BY_CODE

from service import errors


def every_error(cls: type[errors.ServiceError]) -> list[type[errors.ServiceError]]:
    return [cls, *(sub for child in cls.__subclasses__() for sub in every_error(child))]


def test_every_server_error_code_has_its_status_in_the_client():
    server = {cls.code: cls.status for cls in every_error(errors.ServiceError)}
    assert {code: STATUS_BY_CODE.get(code) for code in server} == server


def test_the_handlers_own_codes_are_there_too():
    assert STATUS_BY_CODE["internal"] == 500 and STATUS_BY_CODE["invalid_input"] == 422
