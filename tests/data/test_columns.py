import pytest

from retain.data.columns import ColumnMapping
from retain.errors import RetainInputError


def test_parses_quoted_and_bare_names() -> None:
    mapping = ColumnMapping.parse(
        'customer_id="Customer ID",timestamp=InvoiceDate, amount = Amount,order_id=Invoice'
    )
    assert dict(mapping) == {
        "customer_id": "Customer ID",
        "timestamp": "InvoiceDate",
        "amount": "Amount",
        "order_id": "Invoice",
    }


def test_shell_stripped_quotes_still_parse() -> None:
    # A shell turns customer_id="Customer ID" into customer_id=Customer ID.
    assert ColumnMapping.parse("customer_id=Customer ID,amount=Net")["customer_id"] == "Customer ID"


def test_quoted_value_may_hold_a_comma() -> None:
    assert ColumnMapping.parse("amount='Net, GBP'")["amount"] == "Net, GBP"


def test_empty_text_is_no_mapping() -> None:
    assert len(ColumnMapping.parse("")) == 0
    assert ColumnMapping.parse(None).source_of("amount") == "amount"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("customer_id", "cannot read 'customer_id'"),
        ("customer_id=", "no file column given for 'customer_id'"),
        ("amount=a,amount=b", "'amount' is mapped twice"),
        ("amount=x,customer_id=x", "mapped to more than one contract column"),
    ],
)
def test_bad_mappings_are_refused(text: str, message: str) -> None:
    with pytest.raises(RetainInputError, match=message):
        ColumnMapping.parse(text)


def test_unknown_contract_name_is_refused() -> None:
    with pytest.raises(RetainInputError, match=r"\['cust'\] are not transactions columns"):
        ColumnMapping.parse("cust=Customer").check_names(["customer_id", "amount"], "transactions")
