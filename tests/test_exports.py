"""Long PDFs made by a background job: the waiting page, the download once ready, failures kept."""

import re
import time

import pytest

from letterapp import pdfcache, signatures
from letterapp.letters import load_letter
from letterapp.models import Kind
from letterapp.pdf import PARTS_FROM

SLUG = "test-letter"
EXPORT = f"/manage/letters/{SLUG}/pdf"


@pytest.fixture
def long_list(app, write_letter):
    """The test letter with enough approved signatories to be rendered by a job."""
    write_letter()
    rows = [
        {"kind": Kind.INDIVIDUAL, "name": f"Signatory {i:04d}", "email": f"s{i}@example.org"}
        for i in range(PARTS_FROM)
    ]
    with app.app_context():
        signatures.import_rows(SLUG, rows, "test")
        today = load_letter(app.config["LETTERS_DIR"], SLUG).today()
    # The coordinator's export of today's list, as the Export page asks for it.
    return f"{EXPORT}?as_of={today.isoformat()}&notes=endnotes&paper=a4&download=1"


def wait_for_pdf(client, url: str, seconds: float = 90):
    """Ask as the waiting page does, until the answer is no longer "being prepared"."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        response = client.get(url)
        if response.status_code != 202 and b"Preparing the PDF" not in response.data:
            return response
        time.sleep(0.3)
    pytest.fail(f"{url} was still being prepared after {seconds} s")


def test_a_long_public_pdf_is_prepared_by_a_job_then_served(client, long_list):
    first = client.get(f"/letters/{SLUG}.pdf")
    assert first.status_code == 202
    assert first.headers["Retry-After"] == "3"
    assert re.search(r'<meta http-equiv="refresh" content="3">', first.text)
    ready = wait_for_pdf(client, f"/letters/{SLUG}.pdf")
    assert ready.status_code == 200 and ready.mimetype == "application/pdf"
    assert ready.data.startswith(b"%PDF")
    # From then on it is a cache read, answered at once.
    assert client.get(f"/letters/{SLUG}.pdf").data == ready.data


def test_the_coordinators_download_waits_on_a_page_that_reloads_itself(
    client, coordinator, long_list
):
    url = long_list
    waiting = client.get(url)
    assert waiting.status_code == 200
    assert "Preparing the PDF" in waiting.text
    refresh = re.search(r'<meta http-equiv="refresh" content="2; url=([^"]+)">', waiting.text)
    assert refresh and "download=1" in refresh.group(1) and "retry" not in refresh.group(1)
    ready = wait_for_pdf(client, url)
    assert ready.mimetype == "application/pdf"
    assert "attachment" in ready.headers["Content-Disposition"]


def test_a_failed_render_is_shown_until_the_coordinator_tries_again(
    app, client, coordinator, long_list
):
    app.config["PDF_TIMEOUT"] = 0.05  # no long list renders this fast: the job fails
    url = long_list
    client.get(url)
    failed = wait_for_pdf(client, url)
    assert "The PDF cannot be made: rendering the PDF took longer than" in failed.text
    assert "Try again" in failed.text
    # The failure is kept: asking again shows it and starts nothing.
    with app.app_context():
        folder = pdfcache.cache_dir()
    assert len(list(folder.glob("*.error"))) == 1
    assert "The PDF cannot be made" in client.get(url).text

    app.config["PDF_TIMEOUT"] = 120
    retried = client.get(url + "&retry=1")
    assert "Preparing the PDF" in retried.text
    assert wait_for_pdf(client, url).mimetype == "application/pdf"
    assert list(folder.glob("*.error")) == []


def test_opening_the_export_page_prepares_the_usual_pdf(app, client, coordinator, long_list):
    with app.app_context():
        letter = load_letter(app.config["LETTERS_DIR"], SLUG)
        names = signatures.approved_names(letter, letter.today())
        options = {"as_of": letter.today(), "notes": "endnotes", "paper": "a4"}
        assert pdfcache.lookup(letter, names, **options) is None
        page = client.get(EXPORT)
        assert page.status_code == 200 and "Preparing the PDF" not in page.text
        deadline = time.monotonic() + 90
        while (ready := pdfcache.lookup(letter, names, **options)) is None:
            assert time.monotonic() < deadline, "the usual export was not prepared"
            time.sleep(0.2)
    # The download with the options the page offers first is ready at the first ask.
    download = client.get(long_list)
    assert download.mimetype == "application/pdf" and download.data == ready


def test_a_short_list_is_rendered_in_the_request(client, write_letter):
    write_letter()
    response = client.get(f"/letters/{SLUG}.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
