import json, hashlib
from keystoneclient.contrib.ec2.utils import Ec2Signer
secret = "f0b4a1c2d3e4f5a6b7c8d9e0f1a2b3c4"
empty = hashlib.sha256(b"").hexdigest()
cases = [
  {"name": "version 2", "verb": "GET", "host": "ec2.example.com", "path": "/",
   "params": {"Action": "DescribeInstances", "AWSAccessKeyId": "AKID", "SignatureVersion": "2",
              "SignatureMethod": "HmacSHA1", "Timestamp": "2026-12-03T08:00:00Z", "Version": "2016-11-15"},
   "headers": {}, "body_hash": ""},
  {"name": "version 2, values to encode", "verb": "POST", "host": "ec2.example.com:8773", "path": "/services/Cloud",
   "params": {"Action": "RunInstances", "SignatureVersion": "2", "Name": "a b/c+d~e*f", "Ünïcode": "välue ✓", "Empty": ""},
   "headers": {}, "body_hash": ""},
  {"name": "version 4, Authorization header", "verb": "GET", "host": "ec2.example.com", "path": "/",
   "params": {"Action": "DescribeRegions", "Version": "2016-11-15"},
   "headers": {"Authorization": "AWS4-HMAC-SHA256 Credential=AKID/20261203/us-east-1/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature=x",
               "Host": "ec2.example.com", "X-Amz-Date": "20261203T080000Z", "User-Agent": "x"},
   "body_hash": empty},
  {"name": "version 4, POST ignores the query", "verb": "post", "host": "ec2.example.com", "path": "/",
   "params": {"Action": "DescribeRegions"},
   "headers": {"Authorization": "AWS4-HMAC-SHA256 Credential=AKID/20261203/RegionOne/ec2/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-missing, Signature=x",
               "Host": " ec2.example.com ", "X-Amz-Date": "20261203T080000Z", "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
   "body_hash": hashlib.sha256(b"Action=DescribeRegions").hexdigest()},
  {"name": "version 4, query parameters", "verb": "GET", "host": "ec2.example.com", "path": "/a%20path/",
   "params": {"Action": "DescribeRegions", "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
              "X-Amz-Credential": "AKID/20261203/us-east-1/ec2/aws4_request", "X-Amz-Date": "20261203T080000Z",
              "X-Amz-SignedHeaders": "host"},
   "headers": {"Host": "ec2.example.com"}, "body_hash": empty},
]
for c in cases:
    creds = {k: (dict(v) if isinstance(v, dict) else v) for k, v in c.items() if k != "name"}
    c["signature"] = Ec2Signer(secret).generate(creds)
print(json.dumps({"secret": secret, "generated_by": "python-keystoneclient 6.0.0, keystoneclient.contrib.ec2.utils.Ec2Signer(secret).generate(case)", "cases": cases}, indent=1, ensure_ascii=False))
