package main

// Kata's hypervisor.proto (kata-containers/kata-containers, src/runtime/protocols/hypervisor,
// Apache-2.0, (C) Copyright IBM Corp. 2022) declared by hand as a descriptor: the same package,
// messages, field names and numbers, so the messages on the wire are the ones the Kata shim sends.

import (
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

const hypervisorService = "hypervisor.Hypervisor"

func stringField(name string, number int32) *descriptorpb.FieldDescriptorProto {
	return &descriptorpb.FieldDescriptorProto{
		Name:     proto.String(name),
		JsonName: proto.String(name),
		Number:   proto.Int32(number),
		Label:    descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
		Type:     descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(),
	}
}

func message(name string, fields ...*descriptorpb.FieldDescriptorProto) *descriptorpb.DescriptorProto {
	return &descriptorpb.DescriptorProto{Name: proto.String(name), Field: fields}
}

var hypervisorFile = func() protoreflect.FileDescriptor {
	annotationsEntry := &descriptorpb.DescriptorProto{
		Name:    proto.String("AnnotationsEntry"),
		Field:   []*descriptorpb.FieldDescriptorProto{stringField("key", 1), stringField("value", 2)},
		Options: &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)},
	}
	createVM := message("CreateVMRequest",
		stringField("id", 1),
		&descriptorpb.FieldDescriptorProto{
			Name:     proto.String("annotations"),
			JsonName: proto.String("annotations"),
			Number:   proto.Int32(2),
			Label:    descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum(),
			Type:     descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum(),
			TypeName: proto.String(".hypervisor.CreateVMRequest.AnnotationsEntry"),
		},
		stringField("networkNamespacePath", 3),
	)
	createVM.NestedType = []*descriptorpb.DescriptorProto{annotationsEntry}
	file := &descriptorpb.FileDescriptorProto{
		Name:    proto.String("hypervisor.proto"),
		Package: proto.String("hypervisor"),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			message("VersionRequest", stringField("version", 1)),
			message("VersionResponse", stringField("version", 1)),
			createVM,
			message("CreateVMResponse", stringField("agentSocketPath", 1)),
			message("StartVMRequest", stringField("id", 1)),
			message("StartVMResponse"),
			message("StopVMRequest", stringField("id", 1)),
			message("StopVMResponse"),
		},
	}
	fd, err := protodesc.NewFile(file, nil)
	if err != nil {
		panic(err)
	}
	return fd
}()

// newMessage builds a hypervisor.<name> message with the given string (or map<string,string>) fields set.
func newMessage(name string, values map[string]any) proto.Message {
	md := hypervisorFile.Messages().ByName(protoreflect.Name(name))
	if md == nil {
		panic("no message " + name)
	}
	msg := dynamicpb.NewMessage(md)
	for key, value := range values {
		fd := md.Fields().ByName(protoreflect.Name(key))
		switch v := value.(type) {
		case string:
			msg.Set(fd, protoreflect.ValueOfString(v))
		case map[string]string:
			m := msg.Mutable(fd).Map()
			for k, val := range v {
				m.Set(protoreflect.ValueOfString(k).MapKey(), protoreflect.ValueOfString(val))
			}
		}
	}
	return msg
}

// toMap returns the string fields of a response message.
func toMap(msg proto.Message) map[string]any {
	out := map[string]any{}
	msg.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		out[string(fd.Name())] = v.String()
		return true
	})
	return out
}
